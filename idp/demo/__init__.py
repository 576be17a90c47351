"""Demo data and two demo relying-party sites for the embedded default."""
