"""`python -m funnelboard ...` runs the same CLI as the `funnelboard` script."""

from funnelboard.cli import main

main(prog_name="funnelboard")
