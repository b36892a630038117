"""Analytics: usage recorded from the domain events, rolled up into the `analytics`
table, the public and admin reports built on it, and the admin dashboard."""
