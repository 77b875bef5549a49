"""Entry point of the Python stand-ins, which the bash wrappers exec.

impl is imported rather than run as a script, so that Python uses the bytecode
compiled when the lab is made instead of compiling impl.py again on every call.
"""
import impl

impl.main()
