//! Integration tests of cdphub-attribution.
