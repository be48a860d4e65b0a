"""What generated code imports at run time."""
