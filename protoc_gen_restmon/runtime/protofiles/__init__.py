"""`.proto` source text printed back from embedded descriptors (what the admin API serves).

- `printer`: descriptors → `.proto` text with comments;
- `options`: option values (custom options included) → their text form.
"""
