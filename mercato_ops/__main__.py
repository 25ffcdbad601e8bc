"""`python -m mercato_ops`: the `mercato` command, as the supervisor starts each component."""

from mercato_ops.cli import main

main()
