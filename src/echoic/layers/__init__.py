"""echoic.layers"""
