"""The fault suite (issue 5): hard kills, signals, non-finite losses, contention and disk trouble."""
