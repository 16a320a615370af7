"""echoic.cli"""
