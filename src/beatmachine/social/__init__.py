"""The social domain: comments on patterns (follows, the activity feed and notifications
join it), listening to what patterns and users do through their domain events."""
