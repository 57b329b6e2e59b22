"""The trainer's reusable parts; dogbreed/train.py is the run and the entry point."""
