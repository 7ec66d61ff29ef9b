"""Enrolling people: from images or a camera to a stored, embedded gallery."""
