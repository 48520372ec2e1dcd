// daybreak-callbacks: the WhatsApp status callback receiver. Thin main: the
// HTTP wiring is in server.cpp (compiled with cpp-httplib's definitions), the rules in core/app/callbacks.cpp.
namespace daybreak {
int callbacks_main(int argc, char** argv);
}

int main(int argc, char** argv) { return daybreak::callbacks_main(argc, argv); }
