{
  # Linux only: the transport is built on io_uring/epoll, recvmmsg, SO_TIMESTAMPNS and timerfd.
  #   npx node-gyp rebuild -C workers/native   (add --nodedir=/usr when node-gyp cannot fetch headers)
  "targets": [
    {
      "target_name": "rtp_transport",
      "sources": ["src/transport.cc"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_cc": ["-std=gnu++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", {"type": "none", "sources": []}]
      ]
    }
  ]
}
