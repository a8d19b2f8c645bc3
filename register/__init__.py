"""Population-register stub: its own Flask app, database and port (8100)."""
