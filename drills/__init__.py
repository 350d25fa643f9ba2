"""Backups to S3 and disaster-recovery drills."""
