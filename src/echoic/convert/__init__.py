"""echoic.convert"""
