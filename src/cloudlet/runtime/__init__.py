"""Sandbox handlers behind one interface (see interface.py): runc, microvm, wasm."""
