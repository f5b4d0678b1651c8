"""POP3 (chapter 14): the lab's server on a sans-I/O core, and a client on poplib."""
