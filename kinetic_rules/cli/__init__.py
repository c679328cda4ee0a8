"""The command line: commands only; every user error becomes exit code 2, never a traceback."""
