"""Policy trainers: plain torch and DeepSpeed, behind one interface."""
