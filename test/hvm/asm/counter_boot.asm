; A boot sector that counts, for the HVM save and restore tests
; (test/save/hvm_save.test.ts): every second BIOS timer tick (IRQ0 through
; the PIC, SeaBIOS's count at 0040:006C, about 110 ms) it prints
; "COUNT xxxxxxxx" on COM1 and adds one. The count lives in EBX, a
; register: only a vCPU restored with its registers goes on from where it
; was (its pages alone would not). It halts between ticks, so the vCPU
; blocks, and its output goes through qemu-dm's UART.
bits 16
org 0x7c00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    xor ebx, ebx
    sti
.tick:
    mov edi, [0x46c]
.wait:
    hlt
    mov eax, [0x46c]
    sub eax, edi
    cmp eax, 2
    jb .wait
    mov dx, 0x3f8
    mov si, msg
.text:
    lodsb
    test al, al
    jz .digits
    out dx, al
    jmp .text
.digits:
    mov cx, 8
.digit:
    rol ebx, 4                  ; eight nibbles: EBX is itself again after the loop
    mov al, bl
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 7
.out:
    out dx, al
    loop .digit
    mov al, 13
    out dx, al
    mov al, 10
    out dx, al
    inc ebx
    jmp .tick
msg: db "COUNT ", 0
    times 510 - ($ - $$) db 0
    dw 0xaa55
