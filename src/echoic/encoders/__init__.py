"""echoic.encoders"""
