"""echoic.data"""
