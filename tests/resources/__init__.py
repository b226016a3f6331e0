"""Tests for cloudlet.resources (kind defaulting, validation, registration)."""
