"""Schreibassistenz: summaries, minutes, press releases, letters and Leichte Sprache."""
