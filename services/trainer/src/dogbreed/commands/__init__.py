"""The ``dogbreed`` subcommands: thin click commands over the library (torch imported only when they run)."""
