"""The `facestats` command line: a leaf that nothing else imports (`facestats_dagster.cli.main:main`)."""
