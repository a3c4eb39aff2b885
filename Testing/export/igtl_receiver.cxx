// An independent OpenIGTLink receiver for the export tests, built on the reference C++ library
// (Debian libopenigtlink-dev). Listens on argv[1], accepts one client, unpacks every message
// with CRC checking and prints one line per message until the client disconnects:
//   POLYDATA <device> <npoints> <npolygons> <nlines> <sum of x> <sum of y> <sum of z> <max index>
//   POINT <device> <n> then "  <name>|x y z" per point
//   STRING <device> <text>
//   TRANSFORM <device> <12 numbers, rows of the 3x4 matrix>
//   CRCFAIL <type> <device>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>

#include "igtlMessageHeader.h"
#include "igtlPointMessage.h"
#include "igtlPolyDataMessage.h"
#include "igtlServerSocket.h"
#include "igtlStringMessage.h"
#include "igtlTransformMessage.h"

template <class M>
static bool receive(igtl::Socket* s, igtl::MessageHeader::Pointer& h, typename M::Pointer& m) {
  m = M::New();
  m->SetMessageHeader(h);
  m->AllocatePack();
  s->Receive(m->GetPackBodyPointer(), m->GetPackBodySize());
  int c = m->Unpack(1);
  if (!(c & igtl::MessageHeader::UNPACK_BODY)) {
    std::printf("CRCFAIL %s %s\n", h->GetDeviceType(), h->GetDeviceName());
    return false;
  }
  return true;
}

static unsigned cell_max(igtl::PolyDataCellArray* cells, unsigned& n) {
  unsigned mx = 0;
  n = cells ? cells->GetNumberOfCells() : 0;
  for (unsigned i = 0; i < n; ++i) {
    std::list<igtlUint32> cell;
    cells->GetCell(i, cell);
    for (igtlUint32 v : cell) mx = v > mx ? v : mx;
  }
  return mx;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  igtl::ServerSocket::Pointer server = igtl::ServerSocket::New();
  if (server->CreateServer(std::atoi(argv[1])) < 0) return 3;
  std::printf("LISTENING\n");
  std::fflush(stdout);
  igtl::Socket::Pointer socket;
  while (!socket) socket = server->WaitForConnection(1000);
  igtl::MessageHeader::Pointer h = igtl::MessageHeader::New();
  for (;;) {
    h->InitPack();
    if (socket->Receive(h->GetPackPointer(), h->GetPackSize()) != h->GetPackSize()) break;
    h->Unpack();
    const char* type = h->GetDeviceType();
    const char* dev = h->GetDeviceName();
    if (!std::strcmp(type, "POLYDATA")) {
      igtl::PolyDataMessage::Pointer m;
      if (!receive<igtl::PolyDataMessage>(socket, h, m)) continue;
      igtl::PolyDataPointArray* pts = m->GetPoints();
      double sx = 0, sy = 0, sz = 0;
      int np = pts ? pts->GetNumberOfPoints() : 0;
      for (int i = 0; i < np; ++i) {
        igtlFloat32 p[3];
        pts->GetPoint(i, p);
        sx += p[0]; sy += p[1]; sz += p[2];
      }
      unsigned npoly = 0, nline = 0;
      unsigned mx = cell_max(m->GetPolygons(), npoly);
      unsigned ml = cell_max(m->GetLines(), nline);
      std::printf("POLYDATA %s %d %u %u %.3f %.3f %.3f %u\n", dev, np, npoly, nline, sx, sy, sz, mx > ml ? mx : ml);
    } else if (!std::strcmp(type, "POINT")) {
      igtl::PointMessage::Pointer m;
      if (!receive<igtl::PointMessage>(socket, h, m)) continue;
      int n = m->GetNumberOfPointElement();
      std::printf("POINT %s %d\n", dev, n);
      for (int i = 0; i < n; ++i) {
        igtl::PointElement::Pointer e;
        m->GetPointElement(i, e);
        igtlFloat32 p[3];
        e->GetPosition(p);
        std::printf("  %s|%.3f %.3f %.3f\n", e->GetName(), p[0], p[1], p[2]);
      }
    } else if (!std::strcmp(type, "STRING")) {
      igtl::StringMessage::Pointer m;
      if (!receive<igtl::StringMessage>(socket, h, m)) continue;
      std::printf("STRING %s %s\n", dev, m->GetString());
    } else if (!std::strcmp(type, "TRANSFORM")) {
      igtl::TransformMessage::Pointer m;
      if (!receive<igtl::TransformMessage>(socket, h, m)) continue;
      igtl::Matrix4x4 mat;
      m->GetMatrix(mat);
      std::printf("TRANSFORM %s", dev);
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 4; ++c) std::printf(" %.6f", mat[r][c]);
      std::printf("\n");
    } else {
      socket->Skip(h->GetBodySizeToRead(), 0);
      std::printf("OTHER %s %s\n", type, dev);
    }
    std::fflush(stdout);
  }
  socket->CloseSocket();
  return 0;
}
