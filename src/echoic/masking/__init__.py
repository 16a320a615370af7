"""echoic.masking"""
