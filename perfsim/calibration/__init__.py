"""Calibration and validation: measurements, fitting of cost parameters, profiles."""
