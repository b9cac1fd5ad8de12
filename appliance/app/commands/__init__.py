"""CLI subcommands, one module per area. `common` holds the options and secret handling they share."""
