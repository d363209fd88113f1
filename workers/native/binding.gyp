{
  # Linux only: the transport is built on epoll, recvmmsg and SO_TIMESTAMPNS.
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
