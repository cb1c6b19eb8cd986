"""Check-in schedules: the policy (when a person is prompted) and planning prompts ahead."""
