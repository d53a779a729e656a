"""`python -m aerec` runs the aerec command group."""

from aerec.cli import main

main()
