"""The package's version, in a leaf of its own so any module may name it without importing the
package root (and everything the root loads)."""

__version__ = "0.1.0"
