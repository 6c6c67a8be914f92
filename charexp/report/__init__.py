"""`charexp report`: run and sweep reports, and their plots."""
