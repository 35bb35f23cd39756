"""Run control: commands and their wire protocol, the owner-only control socket (server, client), and a run
in another process driven through it."""
