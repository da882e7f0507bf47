"""Three bugs planted in otherwise ordinary adapters, as a user would write them: how the suite's
failure output reads for each is tested in tests/test_failure_output.py (issue 22)."""
