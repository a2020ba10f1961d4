"""SPELL Studio web application (Django project). Never imports torch at module level."""
