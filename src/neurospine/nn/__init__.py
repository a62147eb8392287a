"""Training-time helpers (torch). Runtime code never imports this package except ``augment`` (numpy)."""
