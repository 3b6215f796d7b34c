"""The bench's scenarios, one module each: ``run(b)`` measures and returns its JSON results."""
