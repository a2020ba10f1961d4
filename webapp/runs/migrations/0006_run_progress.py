from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0005_run_eval_sets")]

    operations = [
        migrations.AddField(
            model_name="run",
            name="progress",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="run",
            name="last_step",
            field=models.IntegerField(default=0, help_text="The last finished step (its metrics stored)."),
        ),
    ]
