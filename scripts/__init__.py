"""Helper packages of the command-line scripts (importable as `scripts.<name>`)."""
