"""Payload crafting: inert payload builders, their injection into benign carriers, and evasive samples.

Used by `datasets` (to build labelled files) and `attacks` (to rebuild and transform payloads); it imports
neither. Every payload is inert: it echoes, writes a marker file under a temp folder or opens a loopback port.
"""
