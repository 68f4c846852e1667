"""The `salt-budget` commands, one module each: `add_parser(commands)` adds its parser and handler."""
