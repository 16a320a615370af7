"""echoic.evaluate"""
