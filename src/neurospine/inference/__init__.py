"""Running shipped models."""
