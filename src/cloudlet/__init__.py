"""cloudlet: a whole cloud-native platform on one machine."""

__version__ = "0.1.0"
