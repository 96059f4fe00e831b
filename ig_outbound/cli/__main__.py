"""`python -m ig_outbound.cli`: the same as the `ig-outbound` command."""

from ig_outbound.cli.app import main

main()
