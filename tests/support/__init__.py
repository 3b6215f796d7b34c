"""Helpers shared by the tests: real protocol clients and fake providers."""
