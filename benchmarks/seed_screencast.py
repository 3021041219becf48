"""The seed's Flask screen share (shared/seeds/000_91b73b7d3e6379bd.txt), for side-by-side numbers.

A faithful copy of the seed's design, changed only so that it runs here:

* ``PIL.ImageGrab.grab()`` became an ``mss`` grab converted to an RGB image
  (what ``ImageGrab`` returns), with the ``mss`` handle made in the camera
  thread as ``ImageGrab`` would;
* ``Image.ANTIALIAS`` (gone in Pillow 10) became ``Image.Resampling.LANCZOS``,
  the filter it was an alias of;
* the ``cv2.VideoCapture`` check (a webcam the screen grab never used) is gone;
* host and port come from the command line, and ``/stats`` (a counter of
  captured frames, read by the benchmark) was added.

Everything else is the seed's: module-level state, a camera thread in a busy
loop, JPEG quality 100, a ``CameraEvent`` that iterates its dict of viewers
while viewers add themselves (the race the restkit example fixes), and
Flask's threaded development server.

Run: ``python benchmarks/seed_screencast.py --port 8001`` (needs a DISPLAY).
"""

import argparse
import threading
import time
from io import BytesIO

import mss
from flask import Flask, Response, render_template_string
from PIL import Image

try:
    from greenlet import getcurrent as get_ident
except ImportError:
    try:
        from thread import get_ident
    except ImportError:
        from _thread import get_ident


class CameraEvent(object):
    def __init__(self):
        self.events = {}

    def wait(self):
        ident = get_ident()
        if ident not in self.events:
            self.events[ident] = [threading.Event(), time.time()]
        return self.events[ident][0].wait()

    def set(self):
        now = time.time()
        remove = None
        for ident, event in self.events.items():
            if not event[0].is_set():  # isSet() is gone from Python 3.13; same method
                event[0].set()
                event[1] = now
            else:
                if now - event[1] > 5:
                    remove = ident
        if remove:
            del self.events[remove]

    def clear(self):
        self.events[get_ident()][0].clear()


class BaseCamera(object):
    thread = None
    frame = None
    last_access = 0
    event = CameraEvent()
    frames_captured = 0  # added for the benchmark

    def __init__(self):
        if BaseCamera.thread is None:
            BaseCamera.last_access = time.time()

            BaseCamera.thread = threading.Thread(target=self._thread)
            BaseCamera.thread.start()

            while self.get_frame() is None:
                time.sleep(0)

    def get_frame(self):
        BaseCamera.last_access = time.time()

        BaseCamera.event.wait()
        BaseCamera.event.clear()

        return BaseCamera.frame

    @staticmethod
    def frames():
        raise RuntimeError("Must be implemented by subclasses.")

    @classmethod
    def _thread(cls):
        print("Starting camera thread.")
        frames_iterator = cls.frames()
        for frame in frames_iterator:
            BaseCamera.frame = frame
            BaseCamera.frames_captured += 1  # added for the benchmark
            BaseCamera.event.set()
            time.sleep(0)
            if time.time() - BaseCamera.last_access > 10:
                frames_iterator.close()
                print("Stopping camera thread due to inactivity.")
                break
        BaseCamera.thread = None


class Camera(BaseCamera):
    video_source = 0

    @staticmethod
    def set_video_source(source):
        Camera.video_source = source

    @staticmethod
    def frames():
        sct = mss.MSS() if hasattr(mss, "MSS") else mss.mss()  # was: cv2.VideoCapture check + ImageGrab
        monitor = sct.monitors[1]
        while True:
            shot = sct.grab(monitor)
            image = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")  # was: ImageGrab.grab()
            image = image.resize((1366, 750), Image.Resampling.LANCZOS)  # was: Image.ANTIALIAS
            output_buffer = BytesIO()
            image.save(output_buffer, format="JPEG", quality=100)
            frame = output_buffer.getvalue()
            yield frame


app = Flask(__name__)


@app.route("/")
def index():
    return render_template_string(
        """<html>
<head>
    <title>屏幕共享</title>
</head>
<body>
    <img src="{{ url_for('video_feed') }}">
</body>
</html>"""
    )


def gen(camera):
    while True:
        frame = camera.get_frame()

        yield (b"--frame\r\n" b"Content-Type: image/jpeg\r\n\r\n" + frame + b"\r\n")


@app.route("/video_feed")
def video_feed():
    return Response(gen(Camera()), mimetype="multipart/x-mixed-replace; boundary=frame")


@app.route("/stats")  # added for the benchmark
def stats():
    return {"frames_captured": BaseCamera.frames_captured, "capturing": BaseCamera.thread is not None}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    app.run(threaded=True, host=args.host, port=args.port)
