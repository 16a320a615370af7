"""echoic.features"""
