"""The daemon's maintenance jobs: gallery refresh, retraining with safe promotion, threshold
calibration and retention, as plain service functions plus the APScheduler that runs them."""
